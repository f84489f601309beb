"""The course's own programs: the runner (main job), the doctor, the learner's lab, the remote lab, DDP training."""
