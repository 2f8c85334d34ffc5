"""GoodsDrop local stack: servers, runtime and bootstrap for development and tests."""
