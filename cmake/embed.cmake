# Turns deploy/pm.conf into a C string so every binary carries its default config.
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from deploy/pm.conf */\nconst char pm_default_conf[] = {${bytes} 0x00};\n")
