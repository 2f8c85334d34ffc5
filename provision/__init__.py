"""What the servers need before GoodsDrop runs on them: the MySQL schema and the Kafka topics.

Used by the local stack's bootstrap (goodsdrop_local.bootstrap) and by a deploy to AWS alike:
`python -m provision` (README, "Deploy to AWS", step 2). `migrations` applies
`db/migrations/NNNN_name.sql` in order; `kafka_topics` creates the topics.
"""
