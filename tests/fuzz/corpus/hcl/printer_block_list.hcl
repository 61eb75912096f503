region = "us-east-2"

key_metadata_file = "./key_metadata"

key_tags {
  team = "x"
}

allowed_regions = ["us-east-1", "us-east-2"]