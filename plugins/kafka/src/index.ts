export const PACKAGE_NAME = '@codefeedr/plugin-kafka';
