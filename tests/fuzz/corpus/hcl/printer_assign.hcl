key_tags = {
  team = "x"
}