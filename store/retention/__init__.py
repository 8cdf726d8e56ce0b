"""Retention: policies, the plan, apply to a trash that loses nothing, restore and purge.

Deletion is two-phase: ``make_plan`` decides (and is saved), ``apply_plan`` re-checks each
item and moves it to ``<root>/.artlens-trash``; only ``purge`` deletes for good.
"""
