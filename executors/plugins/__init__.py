"""Headwater's plugin families, one module per family.

Every module here is imported by :func:`schemas.plugins.load_plugins` and contributes the
:class:`executors.plugin.TaskPlugin` classes of its ``PLUGINS`` list; adding a module is all it
takes to add a family. A module imports only :mod:`executors.plugin`, :mod:`executors.base`,
:mod:`schemas.flow.common` and libraries (never :mod:`schemas.flow.tasks`: the Task union is
built from these modules).
"""
