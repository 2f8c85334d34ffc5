"""What GoodsDrop promises its clients, generated from the product: the OpenAPI document (`openapi.py`)."""
