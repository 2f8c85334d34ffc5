"""GoodsDrop's domain and adapters, shipped to every function as the `common` Lambda layer.

Handlers in `functions/` parse, authorise, call one function from here and shape the answer;
the rules of stock, orders and carts live in this package, once.
"""
