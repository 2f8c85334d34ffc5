"""The live-stock container: Server-Sent Events of each product's stock, fed by Kafka."""
