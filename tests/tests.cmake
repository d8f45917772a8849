# Every tests/test_*.c is one executable and one CTest test. Exit 0 = pass, 77 = skip
# (no Vulkan device), anything else = fail. Tests named test_vk_* run on the Vulkan device
# with the validation layer on; every validation message fails them (vkx counts them).
file(GLOB TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
if(NOT VKEBM_VIEW)
  list(FILTER TEST_SOURCES EXCLUDE REGEX ".*/test_view[^/]*\\.c$") # they need SDL2 (vkebm_view)
endif()
add_library(vkebm_testutil STATIC ${CMAKE_SOURCE_DIR}/tests/testutil.c)
target_link_libraries(vkebm_testutil PUBLIC vkebm_lib)
target_include_directories(vkebm_testutil PUBLIC ${VKEBM_PRIVATE_INCLUDES}) # tests see the internals
foreach(src ${TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE vkebm_testutil)
  if(name MATCHES "^test_view")
    target_link_libraries(${name} PRIVATE vkebm_view)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set(labels "unit")
  set(env "VKEBM_TEST_DATA=${CMAKE_SOURCE_DIR}/tests/data")
  if(name MATCHES "^test_vk_")
    set(labels "vulkan")
    list(APPEND env "VK_LOADER_LAYERS_ENABLE=*validation" "VKEBM_VALIDATION=1")
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 LABELS "${labels}"
                       TIMEOUT 600 ENVIRONMENT "${env}")
endforeach()

# Every embedded shader passes spirv-val.
if(SPIRV_VAL)
  foreach(spv ${SPV_FILES})
    get_filename_component(name ${spv} NAME_WE)
    add_test(NAME spirv_val_${name} COMMAND ${SPIRV_VAL} --target-env vulkan1.2 ${spv})
    set_tests_properties(spirv_val_${name} PROPERTIES LABELS "shader")
  endforeach()
endif()

# The CLI: every tests/cli/*.sh gets the built binary as $1.
file(GLOB CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cli/*.sh)
foreach(sh ${CLI_TESTS})
  get_filename_component(name ${sh} NAME_WE)
  add_test(NAME cli_${name} COMMAND bash ${sh} $<TARGET_FILE:vkebm> ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_${name} PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()
