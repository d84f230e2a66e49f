"""Built-in LatentBench plugins, registered through the ``latentbench`` entry-point group."""
