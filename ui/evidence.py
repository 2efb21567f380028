"""The evidence beside the maps, as every page shows it: faithfulness curves with their table and verdicts,
and the sanity check's maps, chart and verdict. The pages say what their maps are of; these draw them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import streamlit as st

from explainers.figures.faithfulness import faithfulness_figure, faithfulness_rows, replacement_note, verdict
from explainers.figures.sanity import sanity_chart, sanity_verdict
from explainers.records.export import figure_html
from explainers.records.faithfulness import Faithfulness
from explainers.records.sanity import SanityResult

from .presenter import plot
from .markdown import plain


def faithfulness_section(named: Sequence[tuple[str, Faithfulness]], target: str, key: str, file_name: str,
                      note: str = "") -> None:
    """One chart with every map's curves and the references, the table of areas, a sentence per map."""
    figure = faithfulness_figure(named, target)
    plot(figure, key=f"{key}-faithfulness-chart")
    st.dataframe(faithfulness_rows(named), hide_index=True, key=f"{key}-faithfulness-table")
    for name, faithfulness in named:
        st.markdown(f"**{plain(name)}**: {plain(verdict(name, faithfulness))}")
    st.caption(plain(" ".join(filter(None, (replacement_note(named[0][1]), note)))))
    download("Faithfulness figure (HTML)", partial(figure_html, figure), file_name, "text/html")


def sanity_section(checked: Sequence[tuple[str, str, SanityResult]], maps_figure: Callable, key: str,
                file_name: Callable[[str], str], compared: str) -> None:
    """Per (method, name, result): the verdict, the maps after each step, the similarity chart, a download;
    then what was randomised and the pass rule. `compared` says how the maps were compared."""
    for method, name, result in checked:
        (st.success if result.passed else st.warning)(f"**{plain(name)}**: {plain(sanity_verdict(name, result))}")
        maps = maps_figure(result, name)
        plot(maps, key=f"{key}-sanity-maps-{method}")
        chart = sanity_chart(result, name)
        plot(chart, key=f"{key}-sanity-chart-{method}")
        download("Sanity check figures (HTML)", partial(figure_html, maps, chart), file_name(method), "text/html")
    first = checked[0][2]
    st.caption(plain(f"{first.note} Pass rule: rank correlation (Spearman) below {first.threshold} once step "
                     f"{first.rule_step} is random; {compared}. The shared model is never changed."))


def download(label: str, make, file_name: str, mime: str, key: str = "") -> None:
    # Files are built only when clicked, and clicking does not rerun the page.
    st.download_button(label, make, file_name=file_name, mime=mime, on_click="ignore", key=f"dl-{key}-{file_name}")
