"""The course's own programs: the runner (main job), the doctor, the remote lab."""
