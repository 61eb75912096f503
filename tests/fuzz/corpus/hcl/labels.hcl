block "a" "b" { c = 1 }
{ x = 1 }
