// Dates as a citizen in China reads them, whatever the machine's zone.
process.env.TZ = 'Asia/Shanghai';

// Two projects: the unit tests (jsdom, wx.* stubbed at the boundary) that `npm test` runs,
// and the end-to-end test (node, real HTTP to a gridbot serve that tests/test_miniprogram.py
// starts and names in GRIDBOT_E2E_URL).
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'jsdom',
      testMatch: ['<rootDir>/tests/**/*.test.js']
    },
    {
      displayName: 'screenshots',
      testEnvironment: 'jsdom',
      testMatch: ['<rootDir>/scripts/screenshots.shot.js']
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/e2e/**/*.test.js']
    }
  ]
};
