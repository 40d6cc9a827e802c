"""Storage adapters. Only modules in this package import database drivers."""
