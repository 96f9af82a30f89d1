"""Reading an upload: what a file really is, container guards, CSV decoding, the readers."""
