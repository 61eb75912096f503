region = "us-east-2"

key_metadata_file = "./key_metadata"