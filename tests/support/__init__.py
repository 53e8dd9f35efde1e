"""Shared by the tests: builders, fakes, backends and checks; no test lives here."""
