"""A search's results as DataFrames, curves, architecture drawings and an HTML report.

No torch and no Ray here (tests/test_imports.py): a notebook can follow a running search from
any machine that sees its folder. docs/analysis.md.
"""

from nasfpn.analysis.drawing import Edge, Layout, NodeSpot, draw_genotype, layout, save_drawing
from nasfpn.analysis.ledger import (
    latest_search,
    load_controller,
    load_ledger,
    load_search_config,
    search_cost,
    space_of,
    top_k,
)
from nasfpn.analysis.oneshot import (
    load_supernet_log,
    plot_shared_vs_standalone,
    plot_supernet_training,
    shared_vs_standalone,
    supernet_folder,
)
from nasfpn.analysis.plots import (
    choice_frequencies,
    health_fields,
    pareto_front,
    plot_controller,
    plot_decisions,
    plot_failures,
    plot_pareto,
    plot_rewards,
    plot_unique,
)
from nasfpn.analysis.report import report_html, write_report

__all__ = [
    "Edge",
    "Layout",
    "NodeSpot",
    "choice_frequencies",
    "draw_genotype",
    "health_fields",
    "latest_search",
    "layout",
    "load_controller",
    "load_ledger",
    "load_search_config",
    "load_supernet_log",
    "pareto_front",
    "plot_controller",
    "plot_decisions",
    "plot_failures",
    "plot_pareto",
    "plot_rewards",
    "plot_shared_vs_standalone",
    "plot_supernet_training",
    "plot_unique",
    "report_html",
    "save_drawing",
    "search_cost",
    "shared_vs_standalone",
    "space_of",
    "supernet_folder",
    "top_k",
    "write_report",
]
