"""A simulated hall: citizens and clerks that drive the real queue code.

``simulator.plan`` draws a day (arrivals from an hourly profile with a morning peak, service
times per service, no-shows, transfers, priority citizens, appointment check-ins, clerk
pauses, late openings and early closings, ratings) from a seed, with no I/O;
``simulator.engine`` plays a plan through a driver, either headless on an injected clock as
fast as the database answers (``simulator.drivers.ServiceDriver``, the queue use cases of
``hall.services.queue``) or in real time scaled by a speed through the HTTP API
(``simulator.drivers.HttpDriver``, used by ``hall demo``).

The kernel never imports this package.
"""
