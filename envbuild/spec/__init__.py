"""Environment specifications: the model users write, and one small loader module per input form.

Read in this order: `source` (text and YAML with line numbers, `Origin`), `requirements` (pip requirements files),
`conda_file` (environment.yml and its platform selectors), `prefix` (an existing conda environment), `dockerfile`
(a Dockerfile or build context), `azureml` (Azure ML CLI v2 environment YAML, and the `save_to_directory` format),
`dispatch` (which loader reads a path) and `model` (`Environment` and its sections, whose constructors call the
loaders). conda-lock files are read by envbuild.lockfile; references that are not files (`curated:NAME`,
`docker://IMAGE`, catalog `NAME:VERSION`) are resolved by envbuild.references. yaml, packaging and rattler are
imported inside functions: the cache-hit path may import this package.
"""

from .azureml import CONDA_FILE, ENVIRONMENT_FILE
from .conda_file import load_conda_file
from .model import CondaDependencies, DockerSection, Environment, PythonSection
from .source import Origin, YamlDocument, read_text, read_yaml

__all__ = ["CONDA_FILE", "ENVIRONMENT_FILE", "CondaDependencies", "DockerSection", "Environment", "Origin",
           "PythonSection", "YamlDocument", "load_conda_file", "read_text", "read_yaml"]
