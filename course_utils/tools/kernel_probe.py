"""What the doctor asks a notebook kernel's Python: its prefix, and whether it finds course_utils and torch.

Run as `python -c "<this file's text>"` from notebooks/, so that, as in a kernel, the current folder is on
sys.path. Standard library only: the Python asked may have neither torch nor this course.
"""

import importlib.util
import json
import sys

course_utils = importlib.util.find_spec("course_utils")
print(json.dumps({"prefix": sys.prefix, "course_utils": course_utils.origin if course_utils else None,
                  "torch": importlib.util.find_spec("torch") is not None}))
