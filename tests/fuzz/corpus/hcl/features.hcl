# comment
// comment
/* block */
"region" = "cn-north-1", key_identifier_file = "/km"
p = <<-EOT
    {"a": 1}
    EOT
q = <<EOF
x
EOF
n = -0x1F
f = -1.5e3
b = [true, false, [], {},]
s = "\n\t\"\\\u00e9\U0001F600"
