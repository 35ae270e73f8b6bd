import Testing
import VolatileCacheTesting

/// Each VOLATILE_REQUIRE_* switch makes only its own tests required (issue 12, item 8).
@Suite("Test switches")
struct TestSwitchTests {
    @Test("VOLATILE_REQUIRE_PRESSURE_TESTS requires the pressure tests; VOLATILE_REQUIRE_PYTHON_TESTS does not")
    func pressureSwitch() {
        #expect(PressureTestPolicy.requirePressureTests(environment: ["VOLATILE_REQUIRE_PRESSURE_TESTS": "1"]))
        #expect(PressureTestPolicy.requirePressureTests(environment: ["VOLATILE_REQUIRE_PRESSURE_TESTS": "true"]))
        #expect(!PressureTestPolicy.requirePressureTests(environment: ["VOLATILE_REQUIRE_PYTHON_TESTS": "1"]))
        #expect(!PressureTestPolicy.requirePressureTests(environment: [:]))
    }
}
