# Turns deploy/workorder/*.csv into C strings, the files workorder uses when
# its config names none (-DDIR=deploy/workorder -DOUT=workorder_files.c).
set (out "/* generated from the CSV files in deploy/workorder */\n")
foreach (name categories staff estates)
  file (READ ${DIR}/${name}.csv content HEX)
  string (REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
  string (APPEND out "const char wo_default_${name}[] = {${bytes} 0x00};\n")
endforeach ()
file (WRITE ${OUT}.tmp "${out}")
file (RENAME ${OUT}.tmp ${OUT})
