"""The command line (``recpilot ...``): thin commands over the workflows of the layers below."""
