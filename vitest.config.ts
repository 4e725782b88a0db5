import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "jsdom",
    include: ["js/**/*.test.ts"],
    setupFiles: ["js/test/setup.ts"],
  },
});
