"""What the tests share: harnesses, fakes, corpora and builders. Never a test itself; no
test module imports another test module, they import from here."""
