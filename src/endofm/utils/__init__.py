"""Small shared helpers: atomic I/O, devices and precision, distributed set-up, logging, seeding."""
