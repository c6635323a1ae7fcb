"""Interactive controls (ipywidgets), one submodule per topic. Each widget is a thin wrapper over
a pure, tested compute function; `ipywidgets` is imported only inside these submodules."""
