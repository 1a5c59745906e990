# Turns deploy/notify/{rules,templates,staff}.conf into C strings, the
# defaults notify uses when [notify] rules / templates / staff are empty.
set (out "/* generated from deploy/notify: rules, templates, staff */\n")
foreach (f rules templates staff)
  file (READ ${DIR}/${f}.conf content HEX)
  string (REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
  string (APPEND out "const char notify_default_${f}[] = {${bytes} 0x00};\n")
endforeach ()
file (WRITE ${OUT} "${out}")
