"""The audit report: one self-contained HTML file a stakeholder can open offline and hand on.

Every figure is inline (plotly.js once, in the file; gallery photos as data URIs), nothing is
fetched, and all text from the data is escaped. The same file prints to PDF (pdf.py). The last
section holds what someone else needs to reproduce the numbers: model and weights hash, library
versions, every setting and seed, the manifest's and every item's sha256, and the command.
"""

from __future__ import annotations

import json
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ..figures import audit as figures
from ..figures.image import escape
from ..records.audit import Audit
from ..records.common import METHOD_NAMES
from ..records.faithfulness import REFERENCE_NAMES

TASK_NAMES = {"image": "image classification", "text": "text classification", "clip": "image-text matching (zero-shot)"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1a1a1a; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; } .gallery { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { width: 250px; font-size: 0.85rem; border: 1px solid #ddd; padding: 0.4rem; break-inside: avoid; }
.card img { width: 100%; } .word { padding: 0 2px; border-radius: 3px; }
.flag { color: #8a6d00; } .bad { color: #b00020; } .good { color: #1b7f3b; } code, .mono { font-family: monospace; }
.hashes td { font-family: monospace; font-size: 0.75rem; } .note { color: #555; font-size: 0.9rem; }
#cell-items { min-height: 1.5rem; font-size: 0.9rem; }
section { break-inside: auto; } .plot { break-inside: avoid; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } .modebar { display: none !important; } }
"""
CLICK_SCRIPT = """
(function () {
  var cells = JSON.parse(document.getElementById('confusion-cells').textContent);
  var plot = document.getElementById('confusion');
  var out = document.getElementById('cell-items');
  if (!plot || !plot.on) { return; }
  plot.on('plotly_click', function (event) {
    var point = event.points[0];
    var names = cells[point.y + ',' + point.x] || [];
    out.textContent = names.length ? names.length + ' item(s): ' + names.join(', ') : 'No items in this cell.';
  });
})();
"""


def render(audit: Audit, command: str) -> str:
    summary, config = audit.summary, audit.config
    parts = [_header(audit), _overview(audit), _per_class(summary), _confusion(summary), _groups(summary),
             _calibration(summary), _examples(audit), _faithfulness(summary, config), _sanity(audit),
             _skipped(summary), _reproduce(audit, command)]
    title = f"Audit of {audit.model['name']} on {audit.dataset['origin']}"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>{''.join(parts)}<script>{CLICK_SCRIPT}</script></body></html>\n")


def _plot(figure, div_id: str | None = None) -> str:
    html = pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})
    return f'<div class="plot">{html}</div>'


def _pct(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(pair, digits: int = 1, percent: bool = True) -> str:
    if not pair:
        return ""
    low, high = pair
    return f"[{_pct(low, digits)}, {_pct(high, digits)}]" if percent else f"[{low:.3f}, {high:.3f}]"


def _header(audit: Audit) -> str:
    model = audit.model
    note = f"<p class=\"note\">{escape(model['note'])}</p>" if model.get("note") else ""
    return (f"<h1>Model audit: {escape(model['name'])}</h1>"
            f"<p>{escape(TASK_NAMES[audit.config['task']])} on {escape(audit.dataset['origin'])}, "
            f"{audit.summary['items']} items. Run {escape(audit.started)} (UTC), engine {escape(audit.engine)}, "
            f"{audit.seconds:.1f} s. Audit id <span class=\"mono\">{escape(audit.id)}</span>.</p>{note}")


def _overview(audit: Audit) -> str:
    s, stats = audit.summary, audit.summary["statistics"]
    rows = [("Items in the dataset", s["items"]), ("Evaluated", s["evaluated"]),
            ("Skipped (unreadable or unsupported)", s["skipped"]),
            ("Accuracy", f"{_pct(s['accuracy'])} {_interval(s['accuracy_interval'])}")]
    if s["top5_accuracy"] is not None:
        rows.append(("Top-5 accuracy", f"{_pct(s['top5_accuracy'])} {_interval(s['top5_accuracy_interval'])}"))
    rows.append(("Expected calibration error", "n/a" if s["ece"] is None else f"{s['ece']:.3f}"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<h2>Summary</h2><table>{body}</table><p class=\"note\">Intervals are 95%: Wilson score intervals "
            f"for accuracies; percentile bootstraps ({stats['bootstrap_resamples']} resamples, seed "
            f"{stats['bootstrap_seed']}) for gaps "
            f"and mean areas.</p>")


def _per_class(summary: dict) -> str:
    head = "<tr><th>Class</th><th>Items (support)</th><th>Predicted</th><th>Precision</th><th>Recall</th><th>F1</th></tr>"
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=\"num\">{r['support']}</td><td class=\"num\">{r['predicted']}</td>"
        f"<td class=\"num\">{_pct(r['precision'])}</td><td class=\"num\">{_pct(r['recall'])}</td>"
        f"<td class=\"num\">{_number(r['f1'])}</td></tr>"
        for name, r in sorted(summary["per_class"].items(), key=lambda kv: (-kv[1]["support"], kv[1]["index"])))
    return (f"<h2>Per class</h2><p class=\"note\">Classes that are some item's label or some item's prediction. "
            f"Precision is n/a for a class never predicted; recall is n/a for a class no item carries.</p>"
            f"<table>{head}{rows}</table>")


def _confusion(summary: dict) -> str:
    confusion = summary["confusion"]
    if not confusion["rows"]:
        return "<h2>Confusion matrix</h2><p>No item was evaluated.</p>"
    # Item names are the user's: no "<" may reach the page, not even inside a JSON script block.
    cells = json.dumps(confusion["items"]).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f"<h2>Confusion matrix</h2><p class=\"note\">Rows are the true classes, columns the predicted ones. "
            f"Click a cell to list its items.</p>{_plot(figures.confusion_figure(confusion), 'confusion')}"
            f"<p id=\"cell-items\"></p><script type=\"application/json\" id=\"confusion-cells\">{cells}</script>")


def _groups(summary: dict) -> str:
    groups, stats = summary["per_group"], summary["statistics"]
    if not groups:
        return ("<h2>Groups</h2><p>The dataset has no group columns. A manifest's extra columns "
                "(e.g. <code>path,label,region</code>) become groups.</p>")
    parts = [f"<h2>Groups</h2><p class=\"note\">For every group column: each value's size, its accuracy with a Wilson "
             f"interval, and its gap to the overall accuracy with a bootstrap interval. A group of fewer than "
             f"{stats['small_group_items']} items, or whose accuracy interval is wider than "
             f"{stats['small_group_interval_width'] * 100:.0f} percentage points, is flagged as too "
             f"small to say anything; a gap is called clear only when its interval excludes zero.</p>"]
    head = "<tr><th>Value</th><th>Size</th><th>Accuracy [95%]</th><th>Gap to overall [95%]</th><th></th></tr>"
    for column, rows in groups.items():
        body = ""
        for value, r in rows.items():
            if r["too_small"]:
                verdict = "<span class=\"flag\">too small to say anything</span>"
            elif r["gap_clear"]:
                verdict = f"<span class=\"{'bad' if r['gap'] < 0 else 'good'}\">clearly {'worse' if r['gap'] < 0 else 'better'}</span>"
            else:
                verdict = "no clear gap"
            body += (f"<tr><td>{escape(value or '(empty)')}</td><td class=\"num\">{r['size']}</td>"
                     f"<td class=\"num\">{_pct(r['accuracy'])} {_interval(r['accuracy_interval'])}</td>"
                     f"<td class=\"num\">{r['gap']:+.1%} {_interval(r['gap_interval'])}</td><td>{verdict}</td></tr>")
        parts.append(f"<h3>{escape(column)}</h3><table>{head}{body}</table>"
                     f"{_plot(figures.group_figure(column, rows, summary['accuracy']))}")
    return "".join(parts)


def _calibration(summary: dict) -> str:
    if summary["ece"] is None:
        return ""
    bins = summary["statistics"]["calibration_bins"]
    return (f"<h2>Calibration</h2><p class=\"note\">Items binned by the probability of the predicted class "
            f"({bins} equal-width bins). The expected calibration error is the item-weighted mean gap "
            f"between accuracy and confidence: {summary['ece']:.3f}.</p>"
            f"{_plot(figures.reliability_figure(summary['calibration'], summary['ece']))}")


def _examples(audit: Audit) -> str:
    if not audit.examples:
        return "<h2>Examples</h2><p>No method was chosen, so no maps are shown.</p>"
    titles = {"confident_errors": "Most confident errors", "unsure_correct": "Least confident correct answers"}
    method = METHOD_NAMES.get(audit.config['methods'][0], audit.config['methods'][0])
    legend = ("Red words speak for the predicted class, blue ones against it; hover a word for its value."
              if audit.config['task'] == "text" else "Warmer colours: more attribution to the predicted class (its size, for signed maps).")
    parts = [f"<h2>Examples</h2><p class=\"note\">{escape(method)} for the predicted class. {legend}</p>"]
    for kind, shown in audit.examples.items():
        cards = "".join(_card(e) for e in shown) or "<p>None.</p>"
        parts.append(f"<h3>{titles[kind]}</h3><div class=\"gallery\">{cards}</div>")
    return "".join(parts)


def _card(example: dict) -> str:
    if "words" in example:
        body = f"<p>{figures.word_spans(example['words'], example['values'])}</p>"
    else:
        body = f"<img alt=\"{escape(example['input'])}\" src=\"{figures.overlay_uri(example['image'], example['map'], example['signed'])}\">"
    return (f"<div class=\"card\">{body}<div><b>{escape(example['input'])}</b><br>true: {escape(example['label'])}<br>"
            f"predicted: {escape(example['prediction'])} ({example['score']:.1%})</div></div>")


def _faithfulness(summary: dict, config) -> str:
    table = summary["faithfulness"]
    if not table:
        return "<h2>Faithfulness</h2><p>No map was measured (no method chosen, or a sample of 0).</p>"
    head = ("<tr><th>Map</th><th>Items</th><th>Deletion area [95%] (lower is better)</th>"
            "<th>Insertion area [95%] (higher is better)</th><th>Items where the map beats it (deletion / insertion)</th></tr>")
    body = ""
    for method, row in table.items():
        body += (f"<tr><td><b>{escape(METHOD_NAMES.get(method, method))}</b></td><td class=\"num\">{row['items']}</td>"
                 f"<td class=\"num\">{row['deletion_auc']:.3f} {_interval(row['deletion_interval'], percent=False)}</td>"
                 f"<td class=\"num\">{row['insertion_auc']:.3f} {_interval(row['insertion_interval'], percent=False)}</td><td></td></tr>")
        for name, ref in row["references"].items():
            body += (f"<tr><td>&nbsp;&nbsp;{escape(REFERENCE_NAMES.get(name, name))}</td><td></td>"
                     f"<td class=\"num\">{ref['deletion_auc']:.3f} {_interval(ref['deletion_interval'], percent=False)}</td>"
                     f"<td class=\"num\">{ref['insertion_auc']:.3f} {_interval(ref['insertion_interval'], percent=False)}</td>"
                     f"<td class=\"num\">{_pct(ref['map_better_deletion'], 0)} / {_pct(ref['map_better_insertion'], 0)}</td></tr>")
    return (f"<h2>Faithfulness</h2><p class=\"note\">On a seeded sample of {config['sample']} items (seed {config['seed']}): "
            f"the predicted class's probability as the most-attributed regions (words, for text) are removed "
            f"(deletion) or revealed (insertion) in {config['faithfulness_steps']} steps. A faithful map beats the "
            f"reference orders: a lower deletion area and a higher insertion area.</p><table>{head}{body}</table>"
            f"{_plot(figures.faithfulness_figure(table))}")


def _sanity(audit: Audit) -> str:
    if not audit.sanity:
        return ""
    rows = ""
    for check in audit.sanity:
        similarity = ", ".join(f"{v:+.2f}" for v in check["similarity"])
        verdict = "<span class=\"good\">passed</span>" if check["passed"] else "<span class=\"bad\">FAILED</span>"
        rows += (f"<tr><td>{escape(check['input'])}</td><td>{escape(METHOD_NAMES.get(check['method'], check['method']))}</td>"
                 f"<td>{verdict}</td><td class=\"mono\">{escape(similarity)}</td></tr>")
    first = audit.sanity[0]
    return (f"<h2>Sanity check</h2><p class=\"note\">The model-randomisation test (Adebayo et al. 2018): the map is "
            f"recomputed as the model's parts are re-initialised from the top, one more at each step "
            f"({escape(first['steps'][-1].replace(' + ', ' → '))}). "
            f"A map that explains the model must change: it passes when the Spearman similarity to the original "
            f"falls below {first['threshold']} by step {first['rule_step']}.</p>"
            f"<table><tr><th>Item</th><th>Map</th><th>Verdict</th><th>Similarity per step</th></tr>{rows}</table>")


def _skipped(summary: dict) -> str:
    skipped = summary["skipped_items"]
    if not skipped:
        return "<h2>Skipped items</h2><p>None: every item was read and predicted.</p>"
    rows = "".join(f"<tr><td>{escape(s['input'])}</td><td>{escape(s['error'])}</td></tr>" for s in skipped)
    return (f"<h2>Skipped items</h2><p>{len(skipped)} item(s) could not be used and are left out of every number "
            f"above.</p><table><tr><th>Item</th><th>Reason</th></tr>{rows}</table>")


def _reproduce(audit: Audit, command: str) -> str:
    model, environment = audit.model, audit.environment
    settings = "".join(f"<tr><th>{escape(k)}</th><td class=\"mono\">{escape(json.dumps(v))}</td></tr>"
                       for k, v in audit.config.items())
    libraries = ", ".join(f"{escape(k)} {escape(v)}" for k, v in environment.get("libraries", {}).items())
    hashes = "".join(f"<tr><td>{escape(r['input'])}</td><td>{escape(r.get('sha256', '(unreadable)'))}</td></tr>"
                     for r in audit.results)
    return (f"<h2>Reproduce</h2><table>"
            f"<tr><th>Command</th><td class=\"mono\">{escape(command)}</td></tr>"
            f"<tr><th>Model</th><td>{escape(model['name'])} ({escape(model['source'])})</td></tr>"
            f"<tr><th>Weights sha256</th><td class=\"mono\">{escape(model['weights_sha256'])}</td></tr>"
            f"<tr><th>Dataset</th><td>{escape(audit.dataset['origin'])}</td></tr>"
            f"<tr><th>Manifest sha256</th><td class=\"mono\">{escape(audit.dataset['sha256'])}</td></tr>"
            f"<tr><th>Date (UTC)</th><td>{escape(audit.started)}</td></tr>"
            f"<tr><th>Python</th><td>{escape(environment.get('python', ''))} on {escape(environment.get('platform', ''))}</td></tr>"
            f"<tr><th>Libraries</th><td>{libraries}</td></tr></table>"
            f"<h3>Settings and seeds</h3><table>{settings}</table>"
            f"<h3>Items</h3><p class=\"note\">sha256 of each item's bytes (texts: of their UTF-8).</p>"
            f"<table class=\"hashes\"><tr><th>Item</th><th>sha256</th></tr>{hashes}</table>")
