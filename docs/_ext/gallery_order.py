"""Order of the examples in the gallery: the main DPA example first.

``docs/conf.py`` passes ``"gallery_order.ExampleOrder"`` to sphinx-gallery's
``within_subsection_order``; a new example must be added to ``EXAMPLE_ORDER``.
"""

import os

EXAMPLE_ORDER = (
    "plot_dpa_digits.py",
    "plot_dpa_fa_runoff.py",
    "plot_dpa_grid_search.py",
    "plot_mnist_dpa.py",
    "plot_bagging_digits.py",
    "plot_rab_digits.py",
    "plot_denoised_digits.py",
    "plot_cohen_digits.py",
    "plot_mixed_frontier.py",
    "plot_seed_backdoor_dpa_rab.py",
    "plot_clean_label_denoising.py",
    "plot_attack_partition_insertion.py",
    "plot_attack_backdoor.py",
    "plot_attack_stealthy_radius.py",
    "plot_convex_bounds.py",
    "plot_convex_bound_limits.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery: an example's position in ``EXAMPLE_ORDER``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        if name not in EXAMPLE_ORDER:
            raise ValueError(
                f"examples/{name} is not listed in EXAMPLE_ORDER (docs/_ext/gallery_order.py)."
            )
        return EXAMPLE_ORDER.index(name)

    def __repr__(self):
        return "ExampleOrder"
