"""Local stand-in for the `azureml_user` package that only exists on Azure ML compute."""
