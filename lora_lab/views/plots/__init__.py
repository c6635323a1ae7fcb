"""Every figure of the course, one submodule per topic. Each function returns `(fig, ax)` and
never calls `plt.show()`. A submodule lists the figures `make figures` writes in a `FIGURES`
dict: file name -> a function of no arguments that computes and draws it."""
