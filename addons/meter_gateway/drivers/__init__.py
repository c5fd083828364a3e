"""Device I/O without Odoo: the transports the gateway models run in worker threads.

Nothing here touches the database: a driver takes plain jobs (addresses, command values) and
returns plain results; the models write them in the main thread.
"""
