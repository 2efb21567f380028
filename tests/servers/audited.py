"""`python tests/servers/audited.py run app.py ...`: Streamlit with a Python audit hook that reports, on
stdout, every file opened for writing and every subprocess, so a test can prove uploads never touch disk."""

import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_TMPFILE", 0)


def report_writes(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
        if writing:
            sys.__stdout__.write(f"AUDIT write-open {path!r}\n")
            sys.__stdout__.flush()
    elif event in ("subprocess.Popen", "os.exec", "os.system"):
        sys.__stdout__.write(f"AUDIT {event}\n")
        sys.__stdout__.flush()


sys.addaudithook(report_writes)

from streamlit.web.cli import main  # noqa: E402  (after the hook, so nothing escapes it)

sys.argv[0] = "streamlit"
sys.exit(main())
