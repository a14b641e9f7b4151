"""Proxy fidelity: does the proxy rank architectures as full training does? (docs/fidelity.md)

``run_fidelity(cfg, out)`` trains a reference set of architectures with the proxy (several
seeds) and with the retrain recipe as independent jobs on Ray, and reports the rank
correlation between the two (:mod:`nasfpn.analysis.fidelity` computes it). Ray is imported
only when a study runs.
"""

from nasfpn.fidelity.config import FidelityConfig, load_fidelity_config
from nasfpn.fidelity.study import plan, reference_set, run_fidelity

__all__ = ["FidelityConfig", "load_fidelity_config", "plan", "reference_set", "run_fidelity"]
