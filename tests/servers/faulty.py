"""`python tests/servers/faulty.py run app.py ...`: Streamlit whose three explainers each fail on their
first call, with an error message full of what a user must never see: a traceback line, a server file
path and the user's own input. Later calls work, so a test can also show that the page recovers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streamlit.web.cli import main  # noqa: E402

from ui import clip_view, image_view, text_view  # noqa: E402


def fail_first_call(module, name: str) -> None:
    real, calls = getattr(module, name), []

    def explainer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f'Traceback (most recent call last):\n  File "/srv/app/explainers/{name}.py", line 1, '
                               f"in {name}\nwhile explaining {args[1:]!r}")
        return real(*args, **kwargs)

    setattr(module, name, explainer)


fail_first_call(image_view, "explain_image")
fail_first_call(text_view, "explain_text")
fail_first_call(clip_view, "explain_image_text")

sys.argv[0] = "streamlit"
sys.exit(main())
