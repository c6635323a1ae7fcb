"""Every figure of the course, one submodule per topic. Each function takes results and returns
`(fig, ax)`; none trains or loads a model, none calls `plt.show()`. A submodule may list recipes
of figures drawn from arithmetic in a `FIGURES` dict (file name -> a function of no arguments);
`lora_lab.course.figures` names those submodules and holds the recipes that train."""
