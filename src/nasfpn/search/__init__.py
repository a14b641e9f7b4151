"""The end-to-end search on Ray Tune: the only part of nasfpn that imports Ray.

``run_search(cfg, out)`` runs the controller behind Tune's Searcher API over proxy trials on Ray
workers, keeps a ledger, resumes after a crash, and exports the best genotype. docs/search.md.
"""

from nasfpn.search.config import SearchConfig, load_search_config
from nasfpn.search.driver import SearchSummary, run_search
from nasfpn.search.export import BEST_FILE, TOP_K_FILE, rank
from nasfpn.search.ledger import LEDGER_FILE, Ledger, read_ledger

__all__ = [
    "BEST_FILE",
    "LEDGER_FILE",
    "TOP_K_FILE",
    "Ledger",
    "SearchConfig",
    "SearchSummary",
    "load_search_config",
    "rank",
    "read_ledger",
    "run_search",
]
