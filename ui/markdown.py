"""Text from users, files and models, shown literally inside Streamlit's Markdown.

Streamlit renders Markdown in captions, alerts and st.markdown: a file named `![x](http://host/p.png).jpg`
would fetch an image, `[x](javascript:...)` would make a link, `:red[...]` and `$...$` would restyle.
Backslash-escaping every ASCII punctuation mark (CommonMark allows it for all of them) leaves plain text.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text) -> str:
    return _PUNCTUATION.sub(r"\\\1", str(text))
