"""Built-in experiments: reproductions of the source papers' figures and tables (``latentbench reproduce``)."""

from latentbench import hookimpl
from latentbench.plugins.experiments.class_radius import grid_gans, lc_vae
from latentbench.plugins.experiments.geometry import beta_sweep, eigen_attack_grid, mixup
from latentbench.plugins.experiments.robust_dae import robust_dae_tables
from latentbench.plugins.experiments.smooth_encoder import se_downstream
from latentbench.plugins.experiments.table51_factors import table51_factors

EXPERIMENTS = [beta_sweep, mixup, eigen_attack_grid, grid_gans, lc_vae, se_downstream, robust_dae_tables,
               table51_factors]


@hookimpl
def latentbench_experiments():
    return list(EXPERIMENTS)
