# Copies a .proto file (IN) to OUT without its `service { ... }` blocks, so that
# protoc-c generates message code only.
file(READ ${IN} text)
string(REGEX REPLACE "\nservice [A-Za-z0-9_]+ {[^}]*}" "" text "${text}")
file(WRITE ${OUT} "${text}")
