# pm_add_daemon: one daemon, its library, its storage proto and its tests.
#
#   pm_add_daemon (NAME billing
#                  SOURCES billing.c units.c invoices.c
#                  STORE_PROTO billing_store.proto      # optional: its LMDB records
#                  TESTS tests/test_billing.c tests/test_dunning.c
#                  LIBS ${CURL_LIBS})                    # optional: more to link
#
# gives billing_lib (everything but main.c), the pm-billing executable, and one
# cmocka program per test file, each linked with billing_lib and the
# test-support library: tests/test_billing.c is target test_billing (ctest
# unit.billing), tests/test_dunning.c is test_billing_dunning (unit.billing_dunning),
# so two daemons may both have a test_templates.c.
function (pm_add_daemon)
  cmake_parse_arguments (D "" "NAME;STORE_PROTO" "SOURCES;TESTS;LIBS" ${ARGN})
  set (lib ${D_NAME}_lib)
  set (srcs ${D_SOURCES})
  set (gen ${PM_GEN}/${D_NAME})
  if (D_STORE_PROTO)
    get_filename_component (pn ${D_STORE_PROTO} NAME_WE)
    add_custom_command (
      OUTPUT ${gen}/${pn}.pb-c.c ${gen}/${pn}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
      COMMAND ${PROTOC_C} --c_out=${gen} -I ${CMAKE_SOURCE_DIR}/proto -I ${CMAKE_CURRENT_SOURCE_DIR}
              ${CMAKE_CURRENT_SOURCE_DIR}/${D_STORE_PROTO}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${D_STORE_PROTO} ${PM_PROTOS}
      COMMENT "protoc-c: services/${D_NAME}/${D_STORE_PROTO}")
    list (APPEND srcs ${gen}/${pn}.pb-c.c)
  endif ()
  add_library (${lib} STATIC ${srcs})
  target_include_directories (${lib} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${gen})
  target_link_libraries (${lib} PUBLIC pm_common ${D_LIBS})
  add_executable (pm-${D_NAME} main.c)
  target_link_libraries (pm-${D_NAME} ${lib})
  foreach (t ${D_TESTS})
    get_filename_component (tn ${t} NAME_WE)
    string (REGEX REPLACE "^test_" "" short ${tn})
    if (NOT short MATCHES "^${D_NAME}")
      set (short ${D_NAME}_${short})
      set (tn test_${short})
    endif ()
    add_executable (${tn} ${t})
    target_link_libraries (${tn} ${lib} pm_testsupport)
    add_test (NAME unit.${short} COMMAND ${tn})
  endforeach ()
endfunction ()
