"""Test data for localstripe (shared by conftest.py and the Stripe tests)."""

TEST_KEY = "sk_test_payday_0123456789abcdef"  # localstripe accepts any key starting with sk_
VISA = "4242424242424242"  # attaches and charges
DECLINES_ON_CHARGE = "4000000000000341"  # attaches to a customer, declines when charged
