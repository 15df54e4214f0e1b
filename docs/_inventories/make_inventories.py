"""Write the small intersphinx inventories that docs/conf.py reads instead of downloading.

The docs are built without network access, so intersphinx cannot fetch the
projects' ``objects.inv``. This script writes, for each project, an inventory
that lists only the objects our pages reference, each with its real upstream
URL. When a page starts referencing a new object of one of these projects, add
it to ``INVENTORIES`` and run::

    python docs/_inventories/make_inventories.py

(the docs build warns about external references it cannot resolve, and
tests/test_docs.py checks that the committed files match this table).
"""

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# project -> (display name, base URL, [(name, domain:role, location relative to the base URL)])
INVENTORIES = {
    "python": ("Python", "https://docs.python.org/3/", [
        ("collections.abc.Callable", "py:class",
         "library/collections.abc.html#collections.abc.Callable"),
        ("collections.abc.Mapping", "py:class",
         "library/collections.abc.html#collections.abc.Mapping"),
        ("collections.abc.Sequence", "py:class",
         "library/collections.abc.html#collections.abc.Sequence"),
        ("os.PathLike", "py:class", "library/os.html#os.PathLike"),
        ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path"),
    ]),
    "numpy": ("NumPy", "https://numpy.org/doc/stable/", [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        # The spelling of annotations that autodoc shows as written (dataclass fields).
        ("np.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("numpy.ma.MaskedArray", "py:class",
         "reference/maskedarray.baseclass.html#numpy.ma.MaskedArray"),
        ("numpy.percentile", "py:function",
         "reference/generated/numpy.percentile.html#numpy.percentile"),
    ]),
    "sklearn": ("scikit-learn", "https://scikit-learn.org/stable/", [
        # Cited by the set_*_request methods that sklearn generates on every estimator.
        ("metadata_routing", "std:label", "metadata_routing.html#metadata-routing"),
        ("meta-estimator", "std:term", "glossary.html#term-meta-estimator"),
        ("sklearn.set_config", "py:function",
         "modules/generated/sklearn.set_config.html#sklearn.set_config"),
        ("sklearn.frozen.FrozenEstimator", "py:class",
         "modules/generated/sklearn.frozen.FrozenEstimator.html"
         "#sklearn.frozen.FrozenEstimator"),
        ("sklearn.model_selection.GridSearchCV", "py:class",
         "modules/generated/sklearn.model_selection.GridSearchCV.html"
         "#sklearn.model_selection.GridSearchCV"),
        ("sklearn.utils.parallel.Parallel", "py:class",
         "modules/generated/sklearn.utils.parallel.Parallel.html"
         "#sklearn.utils.parallel.Parallel"),
    ]),
    "joblib": ("joblib", "https://joblib.readthedocs.io/en/stable/", [
        ("joblib.parallel_config", "py:function",
         "generated/joblib.parallel_config.html#joblib.parallel_config"),
    ]),
    "torch": ("PyTorch", "https://docs.pytorch.org/docs/stable/", [
        ("torch", "py:module", "torch.html"),
        ("torch.Generator", "py:class", "generated/torch.Generator.html#torch.Generator"),
        ("torch.Tensor", "py:class", "tensors.html#torch.Tensor"),
        ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
        ("torch.func", "py:module", "func.html"),
        ("torch.func.functional_call", "py:function",
         "generated/torch.func.functional_call.html#torch.func.functional_call"),
        ("torch.func.grad", "py:function", "generated/torch.func.grad.html#torch.func.grad"),
        ("torch.func.grad_and_value", "py:function",
         "generated/torch.func.grad_and_value.html#torch.func.grad_and_value"),
        ("torch.func.jvp", "py:function", "generated/torch.func.jvp.html#torch.func.jvp"),
        ("torch.func.stack_module_state", "py:function",
         "generated/torch.func.stack_module_state.html#torch.func.stack_module_state"),
        ("torch.func.vjp", "py:function", "generated/torch.func.vjp.html#torch.func.vjp"),
        ("torch.func.vmap", "py:function", "generated/torch.func.vmap.html#torch.func.vmap"),
        ("torch.nn.functional.pad", "py:function",
         "generated/torch.nn.functional.pad.html#torch.nn.functional.pad"),
        ("torch.optim.AdamW", "py:class",
         "generated/torch.optim.AdamW.html#torch.optim.AdamW"),
        ("torch.set_num_threads", "py:function",
         "generated/torch.set_num_threads.html#torch.set_num_threads"),
        ("torch.use_deterministic_algorithms", "py:function",
         "generated/torch.use_deterministic_algorithms.html"
         "#torch.use_deterministic_algorithms"),
    ]),
    # cvxpy documents these under their defining modules; the names are the public aliases.
    "cvxpy": ("CVXPY", "https://www.cvxpy.org/", [
        ("cvxpy.Parameter", "py:class",
         "api_reference/cvxpy.expressions.html"
         "#cvxpy.expressions.constants.parameter.Parameter"),
        ("cvxpy.Problem.solve", "py:method",
         "api_reference/cvxpy.problems.html#cvxpy.problems.problem.Problem.solve"),
    ]),
}


def inventory_lines(project):
    """The uncompressed entries of ``project``'s inventory (Sphinx inventory version 2)."""
    _, _, objects = INVENTORIES[project]
    return [f"{name} {role} 1 {location} -" for name, role, location in sorted(objects)]


def inventory_bytes(project):
    display, _, _ = INVENTORIES[project]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {display}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    body = "".join(line + "\n" for line in inventory_lines(project)).encode()
    return header + zlib.compress(body, 9)


def main():
    for project in INVENTORIES:
        path = HERE / f"{project}.inv"
        path.write_bytes(inventory_bytes(project))
        print(f"wrote {path.relative_to(HERE.parents[1])} ({len(INVENTORIES[project][2])} objects)")


if __name__ == "__main__":
    main()
