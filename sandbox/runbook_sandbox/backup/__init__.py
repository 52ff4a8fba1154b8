"""AWS Backup for the sandbox, laid out as a moto service: models, responses, urls, exceptions."""
