"""What every area plugin shares: the command registry, argument parsing, access control,
reply building and error rendering. Not a NoneBot plugin itself (the leading underscore
keeps `load_plugins` from loading it)."""
