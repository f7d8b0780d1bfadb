"""Stand-in post-generation hook: the same kind of work as the real one, with ccds's helpers."""

import shutil
from copy import copy
from pathlib import Path

from ccds.hook_utils.dependencies import packages, scaffold, write_dependencies

packages_to_install = copy(packages)
# {% if cookiecutter.include_code_scaffold == "Yes" %}
packages_to_install += scaffold
# {% endif %}

docs = Path("docs")
# {% if cookiecutter.docs != "none" %}
packages_to_install += ["{{ cookiecutter.docs }}"]
for item in (docs / "{{ cookiecutter.docs }}").iterdir():
    shutil.move(str(item), str(docs))
# {% endif %}
for leftover in docs.iterdir():
    if leftover.is_dir() and leftover.name != "docs":
        shutil.rmtree(leftover)

write_dependencies(
    "{{ cookiecutter.dependency_file }}",
    packages_to_install,
    ["python-dotenv"],
    repo_name="{{ cookiecutter.repo_name }}",
    module_name="{{ cookiecutter.module_name }}",
    python_version="{{ cookiecutter.python_version_number }}",
)

if "{{ cookiecutter.open_source_license }}" == "No license file":
    Path("LICENSE").unlink()
