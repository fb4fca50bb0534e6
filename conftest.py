"""Root conftest: plugins the whole suite may use (pytest accepts ``pytest_plugins`` only here).

``pytester`` runs small pytest projects in a temporary directory (tests/cli: the testing doc's
own snippets, the plugin's fixtures)."""

pytest_plugins = ["pytester"]
