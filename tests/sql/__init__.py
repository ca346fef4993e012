"""pgTAP-style tests of the SQL package (schema `payday`): SPEC §3, §4, §6 and every error path."""
